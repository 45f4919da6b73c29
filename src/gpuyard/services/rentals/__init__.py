"""Rentals: the launch request and its merge rules (:mod:`.launch`), renting instances and acting
on them (:mod:`.instances`), their wire rows and lists (:mod:`.instance_rows`), their log
snapshots (:mod:`.instance_logs`), the image check before a rental and the runtime brought in
line after a change (:mod:`.settle`), and volumes (:mod:`.volumes`)."""

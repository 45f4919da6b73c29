"""The market of GPUs for rent: the fleet file and the machines it declares (:mod:`.fleet`),
hardware defaults by GPU model (:mod:`.gpu_models`), offer search in SQL (:mod:`.offers` over
the column expressions of :mod:`.offer_columns`), and who holds which GPUs, bids included, with
the asks a machine offers (:mod:`.allocation`)."""

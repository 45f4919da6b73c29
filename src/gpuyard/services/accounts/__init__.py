"""Accounts and who may do what: users and authentication (:mod:`.users`), a user's API keys
(:mod:`.apikeys`) and the permission table their documents are checked against
(:mod:`.permissions`), account secrets (:mod:`.secrets`), web console sessions
(:mod:`.console_sessions`), and the installation's own id (:mod:`.installation`)."""

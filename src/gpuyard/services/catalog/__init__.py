"""The template catalog: a template's content, its canonical form and hash
(:mod:`.template_content`), the rules to create, search, edit and delete templates and their
versions (:mod:`.templates`), the search row each template keeps encoded (:mod:`.template_rows`),
and the in-memory cache of search answers (:mod:`.answer_cache`)."""

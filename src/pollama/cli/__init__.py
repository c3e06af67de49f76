"""The `pollama` command line: same verbs as `ollama`, talking HTTP to the server."""

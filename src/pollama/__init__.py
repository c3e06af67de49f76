"""pollama: an Ollama-compatible model server in Python on llama.cpp."""

__version__ = "0.1.0"

# The Ollama API version pollama speaks. `/api/version` reports it so that clients which
# gate features on Ollama's version (logprobs, structured create, ...) enable them.
OLLAMA_COMPAT_VERSION = "0.13.0"

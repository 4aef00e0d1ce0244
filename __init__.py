"""extes: build emotional-support chatbots with language models, the ExTES way."""

__version__ = "0.1.0"

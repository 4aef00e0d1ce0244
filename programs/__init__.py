"""DSPy modules and the runtime they need (LM backends, the small-model adapter, safety)."""

import warnings

# DSPy 3.4 deprecates BaseLM.forward and OpenAI-style message dicts in favour of its engine API (removal planned
# for 3.5; pyproject pins dspy<3.5). Our LMs use the supported 3.4 interface; the warnings would only be noise.
warnings.filterwarnings("ignore", message=r".*BaseLM\.forward\(\) or aforward\(\) is deprecated.*")
warnings.filterwarnings("ignore", message=r".*OpenAI-style message.*deprecated.*")

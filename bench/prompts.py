"""Fixed prompts: short ones for the streaming load, a ~1,000-token document for prefill.

The short prompts are raw text (no chat template) that this model continues well past 256
tokens with greedy decoding, so every contender generates the full length and the token
counts compare. Each request gets a distinct first line (see load.run_load), so prompt
caches cannot help any contender during the load sweep.
"""

from __future__ import annotations

PROMPTS = [
    "The history of the printing press begins in the fifteenth century, when",
    "Here is a detailed guide to growing tomatoes in a small garden. First,",
    "The city council met on Tuesday evening to discuss the new public library, and",
    "In the early days of aviation, pilots faced many dangers. For example,",
    "A good night's sleep matters for health for several reasons. The first is that",
    "The recipe for a classic French onion soup starts with the onions, which",
    "Marine biologists studying coral reefs have observed that",
    "The train left the station at dawn, carrying passengers who",
    "Learning a second language as an adult is easier than many people think, because",
    "The museum's new exhibition on ancient Egypt opens next month and features",
    "When the old lighthouse keeper retired, the village decided that",
    "Solar panels convert sunlight into electricity through a process that",
    "The football season ended with a surprising final match in which",
    "Volcanoes form where molten rock from deep inside the Earth",
    "Our company's quarterly report shows that revenue grew by",
    "The story of the Silk Road is a story of trade, ideas and",
]

_PARAGRAPH = (
    "The committee reviewed the annual figures for the regional water network, which serves "
    "farms, towns and several small factories along the river valley. Rainfall was close to "
    "the long-term average, but demand rose during a dry summer, and two pumping stations "
    "needed repairs after a storm damaged their power lines. Engineers replaced worn valves, "
    "cleaned the filters at the northern reservoir and installed new meters in the older "
    "districts, where leaks had been hard to find. The board also discussed prices for the "
    "coming year, a plan to train more technicians, and a survey of households that asked "
    "how often the supply was interrupted and how quickly problems were fixed. "
)
_PARAGRAPHS = 8  # about 1,050 tokens with the header (checked with the model's tokenizer)


def long_document(tag: str) -> str:
    """A ~1,000-token text whose first line is unique to `tag` (so nothing of it is cached)."""
    return f"Report {tag}.\n" + "".join(f"Section {i + 1}. {_PARAGRAPH}\n" for i in range(_PARAGRAPHS))

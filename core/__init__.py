"""What every package shares and nothing of ours: asyncio task helpers, the vocabulary.

`core` imports no other package of this project, so any of them may import it.
"""

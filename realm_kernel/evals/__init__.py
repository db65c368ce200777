"""What the game makes of results: the one grading path (grading), evals and skill state
in the ledger (skillbook), the eval queue, the curriculum, the quests the realm writes
for DIO (practice), the champion, hero stats and achievements."""

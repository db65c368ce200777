"""Inference: the Oracle's bounded model pool and chat (pool), remote OpenAI-compatible
hosts (remote, hosts), and batched greedy answers for evals (answering). Models are
loaded through train.loading, the one loader."""

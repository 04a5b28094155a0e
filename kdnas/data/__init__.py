"""Task data: the GLUE task table and your own tasks, loading, batching, and cached teacher logits."""

"""Building students from the teacher and distilling them: inheritance, importance, losses, the training
loop, the final recipe and resumable checkpoints."""

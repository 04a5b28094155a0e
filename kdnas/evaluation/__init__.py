"""Scoring students: GLUE metrics, dev scores, the GLUE table, the hand-crafted front and the report."""

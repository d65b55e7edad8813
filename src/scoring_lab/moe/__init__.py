"""The UniMoE paper: the task-aware mixture-of-experts block, the multi-task scorer over a shared
encoder, and the chapter's study (MTL, UniMoE, UniMoE-Guided, adaptation, report)."""

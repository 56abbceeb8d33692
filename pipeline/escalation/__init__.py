"""Calling in a human: detecting a conversation that goes badly, the escalation record an expert
works from, notifying experts, and the offline review of sampled transcripts."""

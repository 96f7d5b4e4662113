"""The pure core: records, states, transitions and policies. Standard library only."""

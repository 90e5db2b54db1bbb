"""The peers Triggerfish is measured against, each driven through the same workloads."""

"""The BSS-2 mock: a behavioural emulator at the configuration level (design.md, fidelity contract)."""

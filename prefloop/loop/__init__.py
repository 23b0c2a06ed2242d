"""The rooms that join the others: sync, status, the demo, simulation, the reward glue, gold checks
and annotator quality. Only this package (and the CLI above it) knows that the store, the model,
acquisition and the backends all exist; see docs/architecture.md."""

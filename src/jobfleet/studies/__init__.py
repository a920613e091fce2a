"""Studies: batch controller, sweeps, study files."""

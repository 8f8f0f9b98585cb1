"""`python -m tide.sim TRACE_PATH ...` (same as `tide sim`)."""

from tide.sim.cli import sim_command

if __name__ == "__main__":
    sim_command(prog_name="python -m tide.sim")

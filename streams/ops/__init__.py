"""The operators' commands: the `tally` command line, the demo and the bench. The only room that may
import every other one."""

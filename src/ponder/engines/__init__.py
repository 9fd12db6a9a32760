"""Reasoning engines: Interleaved (think before every act) and Swarm (orchestrated parallel agents)."""

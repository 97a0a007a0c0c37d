"""Target xylo: SynSense Xylo Audio 2 (digital, integer LIF with bit-shift decays)."""

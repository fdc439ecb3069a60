"""The hardware shell: the pin map and pen frame (read from hw/), the gpiozero devices,
the clocks, and the simulated pen that plays the hardware under gpiozero's mock factory."""

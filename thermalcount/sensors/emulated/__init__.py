"""An emulated AMG8833 below the real smbus2 code: register map, frame sources, fault plans."""

"""sensors/emulated"""

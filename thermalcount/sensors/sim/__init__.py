"""sensors/sim"""

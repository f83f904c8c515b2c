"""The documented light rule written out independently of LightPolicy, for end-to-end tests."""


def expected_light_changes(events, off_delay, end_time, *, empty_from_start=False):
    """On when the occupancy becomes > 0, off once it has stayed 0 for ``off_delay`` seconds.

    ``empty_from_start``: the room counts as empty from time 0, so the lights are also
    switched off at the start once ``off_delay`` has passed without anyone (what ``run`` does
    with a back-end that reports every change, e.g. a dummy driver)."""
    changes, empty_since = [], (0.0 if empty_from_start else None)
    for event in events:
        if empty_since is not None and event["time"] - empty_since >= off_delay and changes[-1:] != [False]:
            changes.append(False)
        if event["occupancy"] > 0:
            empty_since = None
            if changes[-1:] != [True]:
                changes.append(True)
        elif empty_since is None:
            empty_since = event["time"]
    if empty_since is not None and end_time - empty_since >= off_delay and changes[-1:] != [False]:
        changes.append(False)
    return changes

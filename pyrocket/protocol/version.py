"""Client version ordinals (``MQVersion.Version``) and their names."""

from __future__ import annotations

#: The 3.0.0 pre-releases, MQVersion's first ordinals.
_PRE_RELEASES = (
    ["SNAPSHOT", "ALPHA1"]
    + [f"BETA{n}" for n in range(1, 6)]
    + [f"BETA{n}{suffix}" for n in range(6, 10) for suffix in ("_SNAPSHOT", "")]
    + ["FINAL"]
)


def _release_versions() -> list[tuple[int, int, int]]:
    # 3.0.1-3.0.15, then every x.y.z up to 5.9.9 except 3.3.0-3.9.0.
    versions = [(3, 0, patch) for patch in range(1, 16)]
    for major in (3, 4, 5):
        for minor in range(1 if major == 3 else 0, 10):
            for patch in range(10):
                if major == 3 and minor >= 3 and patch == 0:
                    continue
                versions.append((major, minor, patch))
    return versions


def version_desc(version: int) -> str:
    """``MQVersion.getVersionDesc``: the name of a client's version ordinal
    (each release after the pre-releases has a ``_SNAPSHOT`` before it)."""
    if 0 <= version < len(_PRE_RELEASES):
        return f"V3_0_0_{_PRE_RELEASES[version]}"
    index = version - len(_PRE_RELEASES)
    releases = _release_versions()
    if 0 <= index < 2 * len(releases):
        major, minor, patch = releases[index // 2]
        return f"V{major}_{minor}_{patch}" + ("_SNAPSHOT" if index % 2 == 0 else "")
    return "HIGHER_VERSION"


#: ``V3_1_8_SNAPSHOT``: the first client version that answers requests a
#: broker forwards to it (GET_CONSUMER_RUNNING_INFO, CONSUME_MESSAGE_DIRECTLY).
VERSION_V3_1_8_SNAPSHOT = 62

__all__ = ["VERSION_V3_1_8_SNAPSHOT", "version_desc"]

"""Sessions recorded as LeRobot v3.0 datasets, and read back for training.

    from corrigible import Session, SessionConfig
    from corrigible.policies.learned.recording import DatasetWriter, load_episodes, record_episode

    with Session(SessionConfig(interactive=True)) as session:
        episode, result = record_episode(session, "put the red block in the blue bowl",
                                         corrections_at=[("a bit higher", 1.5)])
    writer = DatasetWriter(Path("runs/datasets/demo"))
    writer.add(episode)
    writer.write()
    for ep in load_episodes("runs/datasets/demo"):
        ep.frames, ep.state, ep.action, ep.language, ep.precedes_correction

See README.md for the layout and the columns.
"""

from corrigible.policies.learned.recording.config_recording import RecordingConfig
from corrigible.policies.learned.recording.lerobot_v3 import (
    CODEBASE_VERSION,
    DatasetInfo,
    DatasetWriter,
    Episode,
    load_episodes,
    read_info,
)
from corrigible.policies.learned.recording.recording import (
    ACTION_NAMES,
    STATE_NAMES,
    CorrectionMark,
    EpisodeRecorder,
    RecordedEpisode,
    ScheduledCorrections,
    record_episode,
    skill_phrase,
)

__all__ = [
    "ACTION_NAMES",
    "CODEBASE_VERSION",
    "STATE_NAMES",
    "CorrectionMark",
    "DatasetInfo",
    "DatasetWriter",
    "Episode",
    "EpisodeRecorder",
    "RecordedEpisode",
    "RecordingConfig",
    "ScheduledCorrections",
    "load_episodes",
    "read_info",
    "record_episode",
    "skill_phrase",
]

"""Video: decord reading, VideoMAE clip sampling and crops, tubelet tokens, tube masks."""

package buffer

const crashChildEnv = "SKIFF_BUFFER_CRASH_CHILD"

func crashChild(dir string) {}

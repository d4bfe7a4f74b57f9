// Empty: CLibFuzzer only declares libFuzzer's entry point (include/CLibFuzzer.h).

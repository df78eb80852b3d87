// A shared library that is not a fathom plugin (no entry points).
extern "C" __attribute__((visibility("default"))) int fathom_test_not_a_plugin_answer() { return 42; }

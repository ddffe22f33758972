/* argv, envp and getenv, and the exit status: the program exits with the
 * status given as its first argument (default 0). */
#include "support/common.h"
#include <stdlib.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv) {
    const char *slash = strrchr(argv[0], '/');
    printf("argc %d argv0-base %s\n", argc, slash ? slash + 1 : argv[0]);
    for (int i = 1; i < argc; i++) printf("argv[%d] = '%s' (%zu)\n", i, argv[i], strlen(argv[i]));
    printf("argv[argc] is %s\n", argv[argc] == NULL ? "NULL" : "not NULL");
    const char *v = getenv("TSVM_TEST_VAR");
    printf("TSVM_TEST_VAR=%s\n", v ? v : "(unset)");
    printf("MISSING=%s\n", getenv("TSVM_SURELY_MISSING") ? "set" : "(unset)");
    int n = 0, seen = 0;
    for (char **e = environ; *e; e++) { n++; if (strncmp(*e, "TSVM_TEST_", 10) == 0) seen++; }
    printf("environ has TSVM_TEST_ entries: %d\n", seen);
    setenv("TSVM_NEW", "fresh", 1);
    printf("after setenv: %s\n", getenv("TSVM_NEW"));
    unsetenv("TSVM_NEW");
    printf("after unsetenv: %s\n", getenv("TSVM_NEW") ? "set" : "(unset)");
    printf("getuid==geteuid %d\n", getuid() == geteuid());
    int code = argc > 1 ? atoi(argv[1]) : 0;
    fflush(stdout);
    if (argc > 2 && strcmp(argv[2], "_exit") == 0) _exit(code);
    return code;
}

/* popen and system: both run /bin/sh (glibc spawns it with posix_spawn). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    FILE *f = popen("echo hello; seq 1 3; echo to-stderr >&2", "r");
    if (!f) return 1;
    char line[128];
    int n = 0;
    while (fgets(line, sizeof line, f)) printf("popen line %d: %s", ++n, line);
    int st = pclose(f);
    printf("pclose: exited=%d code=%d\n", WIFEXITED(st), WEXITSTATUS(st));

    f = popen("read a b; echo \"got [$b] [$a]\"; exit 4", "w");
    if (!f) return 1;
    fputs("first second\n", f);
    st = pclose(f);
    printf("pclose(w): code=%d\n", WEXITSTATUS(st));

    f = popen("tr a-z A-Z", "w");
    for (int i = 0; i < 200; i++) fprintf(f, "line %d of text\n", i);
    st = pclose(f);
    printf("tr: code=%d\n", WEXITSTATUS(st));

    printf("system(NULL): %d\n", system(NULL) != 0);
    st = system("echo from system; exit 3");
    printf("system: exited=%d code=%d\n", WIFEXITED(st), WEXITSTATUS(st));
    st = system("kill -TERM $$");
    printf("system killed: signalled=%d sig=%d\n", WIFSIGNALED(st), WTERMSIG(st));
    st = system("for i in 1 2 3; do echo \"loop $i\"; done | sort -r");
    printf("system pipeline: code=%d\n", WEXITSTATUS(st));
    return 0;
}

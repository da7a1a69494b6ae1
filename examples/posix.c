/* A plain POSIX program (no nanvix SDK): build it with nanvix's musl and run the binary,
 *
 *     nanvix cc examples/posix.c -o posix && nanvix run ./posix --input "some words"
 *
 * stdin is the invocation's input, stdout its result, stderr its log; files are the tenant's
 * (relative paths, rooted at its tree). It appends the input to journal.txt, then reports the
 * journal's size, its line count, the files in the tenant's top directory and how long it took. */
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

int main(void)
{
    struct timespec t0, t1, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char input[4096];
    size_t n = fread(input, 1, sizeof input - 1, stdin);
    input[n] = 0;

    FILE *f = fopen("journal.txt", "a");
    if (!f) {
        perror("journal.txt");
        return 1;
    }
    fprintf(f, "%s\n", input);
    fclose(f);

    f = fopen("journal.txt", "r");
    int lines = 0, c;
    while (f && (c = fgetc(f)) != EOF)
        lines += c == '\n';
    if (f)
        fclose(f);
    struct stat st;
    if (stat("journal.txt", &st) != 0) {
        perror("stat");
        return 1;
    }

    int files = 0;
    DIR *d = opendir(".");
    for (struct dirent *e; d && (e = readdir(d));)
        files++;
    if (d)
        closedir(d);

    clock_gettime(CLOCK_REALTIME, &now);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    fprintf(stderr, "posix: appended %zu bytes at %lld\n", n, (long long)now.tv_sec);
    printf("{\"journal_bytes\": %lld, \"journal_lines\": %d, \"files\": %d, \"took_us\": %lld}\n",
           (long long)st.st_size, lines, files,
           (long long)((t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000));
    return 0;
}

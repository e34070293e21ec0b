/*
 * gen_wire_corpus.c — writes the wire fuzzer's seeds: every message of
 * tests/fuzz/wire_samples.c (valid ones of each type, and the malformed
 * ones, each named for its defect), one file each.
 *
 *   gen_wire_corpus DIR
 *
 * The output is committed as tests/fuzz/corpus_wire: rerun this only
 * to refresh it, e.g. after a change of the wire format.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/wire_samples.h"

int main(int argc, char **argv)
{
	struct ws_set set;
	const char *tmp = getenv("TMPDIR");
	char path[4200];
	size_t i;
	int err;

	if (argc != 2) {
		fprintf(stderr, "usage: gen_wire_corpus DIR\n");
		return 2;
	}
	err = ws_make_all(tmp && *tmp ? tmp : "/tmp", &set);
	if (err) {
		fprintf(stderr, "gen_wire_corpus: cannot build the samples: %s\n",
			strerror(-err));
		return 1;
	}
	for (i = 0; i < set.n; i++) {
		FILE *f;

		snprintf(path, sizeof(path), "%s/%s%s", argv[1],
			 set.v[i].valid ? "" : "bad_", set.v[i].name);
		f = fopen(path, "wb");
		if (!f || fwrite(set.v[i].p, 1, set.v[i].len, f) != set.v[i].len ||
		    fclose(f) != 0) {
			fprintf(stderr, "gen_wire_corpus: %s: %s\n", path,
				strerror(errno));
			return 1;
		}
	}
	printf("%zu messages in %s\n", set.n, argv[1]);
	ws_set_free(&set);
	return 0;
}

/*
 * gen_pricepaid.c — write rows shaped like the UK land registry "price
 * paid" CSV to stdout, for import benchmarks and tests (SPEC §10).
 *
 *   gen_pricepaid [-n ROWS] [-s SEED]      default 106,178 rows, seed 1
 *
 * Each row has the real file's 16 quoted columns:
 *   "{GUID}","price","YYYY-MM-DD 00:00","postcode","type","old/new",
 *   "duration","PAON","SAON","street","locality","town","district",
 *   "county","PPD category","record status"
 * about 160 bytes a row, so the default is about 17 MB like the real
 * file. Output is a pure function of (ROWS, SEED): a splitmix64
 * generator, no clock, no locale. The GUID (column 1, the key column)
 * is unique within a run: its last group is the row number multiplied
 * by an odd constant modulo 2^48, a bijection. Some SAON fields carry a
 * comma ("FLAT 2, BLOCK A") as the real data does, so the quoting is
 * exercised.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static uint64_t gen_state;

static uint64_t gen_next(void)
{
	uint64_t z = (gen_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static unsigned gen_below(unsigned n)
{
	return (unsigned)(gen_next() % n);
}

#define PICK(a) ((a)[gen_below(ARRAY_SIZE(a))])

static const char *const streets[] = {
	"HIGH STREET", "STATION ROAD", "CHURCH LANE", "MILL LANE",
	"PARK AVENUE", "VICTORIA ROAD", "GREEN LANE", "MANOR ROAD",
	"CHURCH STREET", "THE AVENUE", "QUEENS ROAD", "NEW ROAD",
	"GROVE ROAD", "KINGS ROAD", "ALEXANDRA ROAD", "LONDON ROAD",
	"SCHOOL LANE", "YORK ROAD", "ORCHARD CLOSE", "THE CRESCENT",
};
static const char *const localities[] = {
	"", "", "", "", "HEADINGLEY", "CLIFTON", "WALTON", "ASHFORD",
	"BRAMLEY", "HORSFORTH", "NEWTOWN", "OLD TOWN",
};
struct place {
	const char *town, *district, *county, *area;
};
static const struct place places[] = {
	{ "LONDON", "CITY OF WESTMINSTER", "GREATER LONDON", "SW" },
	{ "LONDON", "CAMDEN", "GREATER LONDON", "NW" },
	{ "MANCHESTER", "MANCHESTER", "GREATER MANCHESTER", "M" },
	{ "LEEDS", "LEEDS", "WEST YORKSHIRE", "LS" },
	{ "BRISTOL", "CITY OF BRISTOL", "CITY OF BRISTOL", "BS" },
	{ "BIRMINGHAM", "BIRMINGHAM", "WEST MIDLANDS", "B" },
	{ "NORWICH", "NORWICH", "NORFOLK", "NR" },
	{ "CARDIFF", "CARDIFF", "CARDIFF", "CF" },
	{ "EXETER", "EXETER", "DEVON", "EX" },
	{ "YORK", "YORK", "YORK", "YO" },
	{ "OXFORD", "OXFORD", "OXFORDSHIRE", "OX" },
	{ "BRIGHTON", "BRIGHTON AND HOVE", "BRIGHTON AND HOVE", "BN" },
};
static const char *const house_names[] = {
	"ROSE COTTAGE", "THE OLD RECTORY", "MEADOW VIEW", "IVY HOUSE",
	"THE LODGE", "ORCHARD HOUSE",
};
static const char prop_types[] = "DSTFO";

static void gen_row(uint64_t i)
{
	const struct place *p = &places[gen_below(ARRAY_SIZE(places))];
	uint64_t tail = (i * 0x9e3779b97f4bULL) & 0xffffffffffffULL;
	unsigned year = 1995 + gen_below(30), month = 1 + gen_below(12);
	unsigned day = 1 + gen_below(28), price;
	char ptype = prop_types[gen_below(5)];
	char paon[40], saon[40];

	/* Prices: mostly 50k..600k, some far above, a few tiny ones. */
	price = 50000 + gen_below(550000);
	if (gen_below(20) == 0)
		price = 600000 + gen_below(4000000);
	else if (gen_below(50) == 0)
		price = 1000 + gen_below(49000);
	price -= price % (gen_below(4) ? 250 : 1);

	if (gen_below(8) == 0)
		snprintf(paon, sizeof(paon), "%s", PICK(house_names));
	else
		snprintf(paon, sizeof(paon), "%u", 1 + gen_below(240));
	saon[0] = '\0';
	if (ptype == 'F') {
		if (gen_below(4) == 0)
			snprintf(saon, sizeof(saon), "FLAT %u, BLOCK %c",
				 1 + gen_below(60), 'A' + gen_below(6));
		else
			snprintf(saon, sizeof(saon), "FLAT %u",
				 1 + gen_below(60));
	}

	/* Every draw in its own statement: argument evaluation order is
	 * unspecified in C, and the output must not depend on the compiler. */
	uint32_t g1 = (uint32_t)gen_next();
	unsigned g2 = gen_below(0x10000), g3 = gen_below(0x10000);
	unsigned g4 = 0x8000 | gen_below(0x4000);
	unsigned pc1 = 1 + gen_below(30), pc2 = gen_below(10);
	char pc3 = 'A' + gen_below(26), pc4 = 'A' + gen_below(26);
	char old_new = gen_below(10) == 0 ? 'Y' : 'N';
	char duration = ptype == 'F' || gen_below(5) == 0 ? 'L' : 'F';
	const char *street = PICK(streets);
	const char *locality = PICK(localities);
	char ppd = gen_below(12) == 0 ? 'B' : 'A';

	printf("\"{%08" PRIX32 "-%04X-%04X-%04X-%012" PRIX64 "}\","
	       "\"%u\",\"%04u-%02u-%02u 00:00\",\"%s%u %u%c%c\","
	       "\"%c\",\"%c\",\"%c\",\"%s\",\"%s\",\"%s\",\"%s\",\"%s\","
	       "\"%s\",\"%s\",\"%c\",\"A\"\n",
	       g1, g2, g3, g4, tail, price, year, month, day,
	       p->area, pc1, pc2, pc3, pc4, ptype, old_new, duration,
	       paon, saon, street, locality, p->town, p->district, p->county,
	       ppd);
}

static int gen_parse(const char *arg, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (*arg < '0' || *arg > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(arg, &end, 10);
	if (errno || *end)
		return -EINVAL;
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t rows = 106178, seed = 1, i;
	int opt;

	while ((opt = getopt(argc, argv, "n:s:h")) != -1) {
		switch (opt) {
		case 'n':
			if (gen_parse(optarg, &rows))
				goto usage;
			break;
		case 's':
			if (gen_parse(optarg, &seed))
				goto usage;
			break;
		case 'h':
			printf("usage: gen_pricepaid [-n ROWS] [-s SEED]\n");
			return 0;
		default:
			goto usage;
		}
	}
	if (optind != argc)
		goto usage;
	gen_state = seed;
	for (i = 0; i < rows; i++)
		gen_row(i);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		perror("gen_pricepaid: stdout");
		return 1;
	}
	return 0;
usage:
	fprintf(stderr, "usage: gen_pricepaid [-n ROWS] [-s SEED]\n");
	return 2;
}

/* ctl_cert.c - starlingctl cert import: certificates for the configured
 * hosts picked from directories (Let's Encrypt's live/HOST/, or any
 * directory of HOST.crt + HOST.key or fullchain.pem + privkey.pem),
 * matched to hosts by the names they carry (wildcards too), copied into
 * the server's certificates directory (option "certificates", Prosody's
 * name, default "certs" beside the config) as HOST.crt and HOST.key, and
 * the running server told to reload them (connections stay; new ones get
 * the new certificate). */
#include "ctl_admin.h"
#include "config.h"
#include "server.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#define SCAN_DEPTH 3

/* A certificate with the key that matches it. */
struct cand {
	char cert[PATH_MAX], key[PATH_MAX];
	X509 *x;
	time_t not_after;
};

struct cands {
	struct cand *v;
	size_t n;
};

static X509 *read_cert(const char *path)
{
	FILE *f = fopen(path, "r");
	X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;

	if (f)
		fclose(f);
	return x;
}

static EVP_PKEY *read_key(const char *path)
{
	FILE *f = fopen(path, "r");
	EVP_PKEY *k = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;

	if (f)
		fclose(f);
	return k;
}

/* cert and key as a candidate, when both read and belong together. */
static void try_pair(struct cands *cs, const char *cert, const char *key)
{
	X509 *x = read_cert(cert);
	EVP_PKEY *k = x ? read_key(key) : NULL;
	struct tm tm;

	if (!x || !k) {
		fprintf(stderr, "starlingctl: skipped %s: %s cannot be read as PEM\n", cert,
			x ? key : cert);
	} else if (X509_check_private_key(x, k) != 1) {
		fprintf(stderr, "starlingctl: skipped %s: the key %s does not belong to it\n",
			cert, key);
	} else if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1) {
		cs->v = xrealloc(cs->v, (cs->n + 1) * sizeof(*cs->v));
		struct cand *c = &cs->v[cs->n++];
		snprintf(c->cert, sizeof(c->cert), "%s", cert);
		snprintf(c->key, sizeof(c->key), "%s", key);
		c->x = x;
		c->not_after = timegm(&tm);
		x = NULL;
	}
	X509_free(x);
	EVP_PKEY_free(k);
	ERR_clear_error();
}

static bool is_file(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Pairs in dir and its subdirectories (symbolic links followed, as
 * Let's Encrypt's live/ is made of them). */
static void scan(struct cands *cs, const char *dir, int depth)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[PATH_MAX], k[PATH_MAX];
	struct stat st;

	if (!d)
		return;
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		if (e->d_name[0] == '.' ||
		    snprintf(p, sizeof(p), "%s/%s", dir, e->d_name) >= (int)sizeof(p) ||
		    stat(p, &st) != 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			if (depth < SCAN_DEPTH)
				scan(cs, p, depth + 1);
		} else if (strcmp(e->d_name, "fullchain.pem") == 0) {
			snprintf(k, sizeof(k), "%s/privkey.pem", dir);
			if (is_file(k))
				try_pair(cs, p, k);
		} else if (len > 4 && strcmp(e->d_name + len - 4, ".crt") == 0) {
			snprintf(k, sizeof(k), "%.*s.key", (int)(strlen(p) - 4), p);
			if (is_file(k))
				try_pair(cs, p, k);
		}
	}
	closedir(d);
}

static int read_all(const char *path, struct sbuf *out)
{
	char buf[8192];
	size_t n;
	FILE *f = fopen(path, "r");

	if (!f)
		return -errno;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		sbuf_add(out, buf, n);
	fclose(f);
	return 0;
}

/* path written with data through a temporary file: mode, and the group
 * of the directory it is in (the server's, for a key). */
static int write_file(const char *path, const struct sbuf *data, mode_t mode, gid_t gid)
{
	char tmp[PATH_MAX + 8];
	int fd, r = 0;

	snprintf(tmp, sizeof(tmp), "%s.new", path);
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (fchown(fd, (uid_t)-1, gid) != 0 && geteuid() == 0)
		r = -errno;
	if (r == 0 && fchmod(fd, mode) != 0)
		r = -errno;
	if (r == 0 && write(fd, data->p, data->len) != (ssize_t)data->len)
		r = -EIO;
	if (r == 0 && fsync(fd) != 0)
		r = -errno;
	if (close(fd) != 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) != 0)
		r = -errno;
	if (r != 0)
		unlink(tmp);
	return r;
}

/* The best candidate for host: one that names it, unexpired, the one
 * valid longest. NULL when none. */
static const struct cand *pick(const struct cands *cs, const char *host)
{
	const struct cand *best = NULL;
	time_t now = time(NULL);

	for (size_t i = 0; i < cs->n; i++) {
		const struct cand *c = &cs->v[i];
		if (c->not_after > now && X509_check_host(c->x, host, 0, 0, NULL) == 1 &&
		    (!best || c->not_after > best->not_after))
			best = c;
	}
	return best;
}

/* Copies c into the host's certificates directory. 0 or 1 (said). */
static int install(const char *host, const struct cand *c)
{
	char db[PATH_MAX], cert[PATH_MAX + 300], key[PATH_MAX + 300], until[32];
	const char *dir = server_path(config_string(host, "certificates", "certs"), db,
				      sizeof(db));
	struct sbuf data;
	struct stat st;
	int r;

	if (!dir || (mkdir(dir, 0750) != 0 && errno != EEXIST) || stat(dir, &st) != 0) {
		fprintf(stderr, "starlingctl: %s: cannot use the certificates directory %s\n",
			host, dir ? dir : "(too long)");
		return 1;
	}
	snprintf(cert, sizeof(cert), "%s/%s.crt", dir, host);
	snprintf(key, sizeof(key), "%s/%s.key", dir, host);
	sbuf_init(&data);
	r = read_all(c->cert, &data);
	if (r == 0)
		r = write_file(cert, &data, 0644, st.st_gid);
	sbuf_reset(&data);
	if (r == 0 && (r = read_all(c->key, &data)) == 0)
		r = write_file(key, &data, 0640, st.st_gid);
	if (data.p)
		memset(data.p, 0, data.cap);
	sbuf_free(&data);
	if (r != 0) {
		fprintf(stderr, "starlingctl: %s: cannot copy %s into %s: %s\n", host, c->cert,
			dir, strerror(-r));
		return 1;
	}
	strftime(until, sizeof(until), "%Y-%m-%d", gmtime(&c->not_after));
	printf("%s: %s (valid until %s) -> %s\n", host, c->cert, until, cert);
	return 0;
}

static int cert_import(int argc, char **argv)
{
	struct cands cs = { 0 };
	const char *name, *type, *module;
	size_t pos = 0;
	int done = 0, missing = 0, failed = 0;

	for (int i = 0; i < argc; i++)
		scan(&cs, argv[i], 0);
	while (config_host_next(&pos, &name, &type, &module)) {
		const struct cand *c = pick(&cs, name);
		if (!c) {
			printf("%s: no certificate for it in %s%s\n", name, argv[0],
			       argc > 1 ? " and the others" : "");
			missing++;
		} else if (install(name, c) != 0) {
			failed++;
		} else {
			done++;
		}
	}
	for (size_t i = 0; i < cs.n; i++)
		X509_free(cs.v[i].x);
	free(cs.v);
	if (done) {
		int r = ctl_admin_reload();
		if (r == -ENOENT)
			printf("the server is not running: it reads them when it starts\n");
		else if (r != 0)
			failed++;
	}
	return failed || !done ? 1 : 0;
}

int ctl_cert(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "import") == 0)
		return cert_import(argc - 2, argv + 2);
	fprintf(stderr, "usage: starlingctl cert import DIR...\n");
	return 2;
}

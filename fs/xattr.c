/*
 * xattr.c — extended attributes. Only the user.* namespace is stored
 * (security.* and system.* read as absent, so ls and cp -a stay quiet;
 * anything else is ENOTSUP). Names under user.statefs. are virtual and
 * never stored:
 *   user.statefs.ttl         read/write/remove: the record's TTL (on a
 *                            directory, the default of files created in
 *                            it), parsed by store_parse_ttl
 *   user.statefs.expires     read-only: the absolute deadline or "never"
 *   user.statefs.lock        read-only: the lock manager's view
 *   user.statefs.lock.token  read-only: the fencing token
 * Any other user.statefs.* name is EPERM to set or remove. listxattr
 * adds user.statefs.ttl when the record has one.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/fs_int.h"
#include "fs/lockops.h"

#define XATTR_TTL "user.statefs.ttl"
#define XATTR_EXPIRES "user.statefs.expires"
#define XATTR_LOCK "user.statefs.lock"
#define XATTR_LOCK_TOKEN "user.statefs.lock.token"
#define XATTR_RESERVED "user.statefs."

/* ---- extended attributes ---- */

static int ns_allowed(const char *name)
{
	return strncmp(name, "user.", 5) == 0;
}

void fs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		 const char *value, size_t size, int flags)
{
	struct fs *fs = fs_of(req);
	char path[FS_PATH_MAX];
	int err;

	fs_count(fs, FS_OP_SETXATTR);
	if (fs_ino_is_ctl(ino)) {
		err = -EPERM;
		goto out;
	}
	if (!ns_allowed(name)) {
		err = -ENOTSUP;
		goto out;
	}
	ns_rd(fs);
	err = fs_itab_path(&fs->itab, ino, path);
	if (err) {
		/* nothing */
	} else if (strcmp(name, XATTR_TTL) == 0) {
		struct store_attr a;

		memset(&a, 0, sizeof(a));
		err = store_parse_ttl(value, size, &a.ttl_ms);
		if (err == -ERANGE)
			err = -EINVAL;
		if (!err)
			err = store_setattr(fs->store, NULL, path, &a,
					    STORE_ATTR_TTL);
	} else if (strncmp(name, XATTR_RESERVED, strlen(XATTR_RESERVED)) == 0) {
		err = -EPERM;
	} else {
		err = store_xattr_set(fs->store, NULL, path, name, value, size,
				      flags);
	}
	ns_unlock(fs);
out:
	if (err)
		fs_reply_err(fs, req, err);
	else
		fuse_reply_err(req, 0);
}

/* Reply a computed xattr value with getxattr's size protocol. */
static void reply_xattr(struct fs *fs, fuse_req_t req, const char *val,
			size_t len, size_t size)
{
	if (size == 0)
		fuse_reply_xattr(req, len);
	else if (size < len)
		fs_reply_err(fs, req, ERANGE);
	else
		fuse_reply_buf(req, val, len);
}

static void do_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			size_t size)
{
	struct fs *fs = fs_of(req);
	char path[FS_PATH_MAX];
	char val[128];
	struct store_stat st;
	ssize_t n;
	int err;

	if (!ns_allowed(name)) {
		/* security.* / system.*: quietly absent, so ls and cp -a
		 * do not complain; anything else is unsupported */
		if (strncmp(name, "security.", 9) == 0 ||
		    strncmp(name, "system.", 7) == 0)
			err = -ENODATA;
		else
			err = -ENOTSUP;
		goto out;
	}
	if (fs_ino_is_ctl(ino)) {
		err = -ENODATA;
		goto out;
	}
	err = fs_itab_path(&fs->itab, ino, path);
	if (err)
		goto out;
	if (strcmp(name, XATTR_TTL) == 0 || strcmp(name, XATTR_EXPIRES) == 0) {
		int len;

		err = store_stat(fs->store, NULL, path, &st);
		if (err)
			goto out;
		if (strcmp(name, XATTR_TTL) == 0) {
			if (!st.ttl_ms) {
				err = -ENODATA;
				goto out;
			}
			if (st.ttl_ms % 1000)
				len = snprintf(val, sizeof(val), "%" PRIu64
					       ".%03" PRIu64, st.ttl_ms / 1000,
					       st.ttl_ms % 1000);
			else
				len = snprintf(val, sizeof(val), "%" PRIu64,
					       st.ttl_ms / 1000);
		} else if (st.expires_ns) {
			len = snprintf(val, sizeof(val), "%" PRId64 ".%03" PRId64,
				       st.expires_ns / 1000000000,
				       st.expires_ns % 1000000000 / 1000000);
		} else {
			len = snprintf(val, sizeof(val), "never");
		}
		reply_xattr(fs, req, val, len, size);
		return;
	}
	if (strcmp(name, XATTR_LOCK) == 0 ||
	    strcmp(name, XATTR_LOCK_TOKEN) == 0) {
		char lbuf[160];

		/* a node that was locked keeps its identity across renames */
		fs_itab_lock_path(&fs->itab, ino, path, 0);
		n = lockops_xattr(fs->locks, path, name, lbuf, sizeof(lbuf));
		if (n >= 0 && size) {
			reply_xattr(fs, req, lbuf, n, size);
		} else if (n >= 0) {
			fuse_reply_xattr(req, n);
		}
		if (n < 0)
			fs_reply_err(fs, req, (int)n);
		return;
	}
	if (size == 0) {
		n = store_xattr_get(fs->store, NULL, path, name, NULL, 0);
		if (n < 0)
			err = (int)n;
		else
			fuse_reply_xattr(req, n);
	} else {
		char *buf = fs_rbuf_get(size);

		if (!buf) {
			err = -ENOMEM;
			goto out;
		}
		n = store_xattr_get(fs->store, NULL, path, name, buf, size);
		if (n < 0)
			err = (int)n;
		else
			fuse_reply_buf(req, buf, n);
	}
out:
	if (err)
		fs_reply_err(fs, req, err);
}

void fs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		 size_t size)
{
	struct fs *fs = fs_of(req);

	fs_count(fs, FS_OP_GETXATTR);
	ns_rd(fs);
	do_getxattr(req, ino, name, size);
	ns_unlock(fs);
}

/* listxattr: the store's names, then user.statefs.ttl if the record
 * has a TTL. Measured and copied in ONE read transaction, so the list
 * cannot grow between the two. */
void fs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct fs *fs = fs_of(req);
	char path[FS_PATH_MAX];
	struct store_txn *t = NULL;
	struct store_stat st;
	ssize_t n = 0;
	size_t total = 0;
	char *buf = NULL;
	int err;

	fs_count(fs, FS_OP_LISTXATTR);
	if (fs_ino_is_ctl(ino)) {
		if (size == 0)
			fuse_reply_xattr(req, 0);
		else
			fuse_reply_buf(req, NULL, 0);
		return;
	}
	ns_rd(fs);
	err = fs_itab_path(&fs->itab, ino, path);
	if (!err)
		err = store_txn_begin(fs->store, 0, &t);
	if (!err)
		err = store_stat(fs->store, t, path, &st);
	if (!err) {
		n = store_xattr_list(fs->store, t, path, NULL, 0);
		if (n < 0)
			err = (int)n;
	}
	if (!err) {
		total = n + (st.ttl_ms ? sizeof(XATTR_TTL) : 0);
		if (size && size < total)
			err = -ERANGE;
	}
	if (!err && size) {
		buf = fs_rbuf_get(total + 1);
		if (!buf)
			err = -ENOMEM;
	}
	if (!err && size && n) {
		n = store_xattr_list(fs->store, t, path, buf, total);
		if (n < 0)
			err = (int)n;
	}
	if (t)
		store_txn_abort(&t);
	ns_unlock(fs);
	if (err) {
		fs_reply_err(fs, req, err);
	} else if (size == 0) {
		fuse_reply_xattr(req, total);
	} else {
		if (st.ttl_ms) {
			/* n + sizeof(XATTR_TTL) <= total: same transaction */
			memcpy(buf + n, XATTR_TTL, sizeof(XATTR_TTL));
			n += sizeof(XATTR_TTL);
		}
		fuse_reply_buf(req, buf, n);
	}
}

void fs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct fs *fs = fs_of(req);
	char path[FS_PATH_MAX];
	int err;

	fs_count(fs, FS_OP_REMOVEXATTR);
	if (fs_ino_is_ctl(ino)) {
		err = -EPERM;
		goto out;
	}
	if (!ns_allowed(name)) {
		err = -ENOTSUP;
		goto out;
	}
	ns_rd(fs);
	err = fs_itab_path(&fs->itab, ino, path);
	if (err) {
		/* nothing */
	} else if (strcmp(name, XATTR_TTL) == 0) {
		struct store_attr a;

		memset(&a, 0, sizeof(a));
		err = store_setattr(fs->store, NULL, path, &a, STORE_ATTR_TTL);
	} else if (strncmp(name, XATTR_RESERVED, strlen(XATTR_RESERVED)) == 0) {
		err = -EPERM;
	} else {
		err = store_xattr_remove(fs->store, NULL, path, name);
	}
	ns_unlock(fs);
out:
	if (err)
		fs_reply_err(fs, req, err);
	else
		fuse_reply_err(req, 0);
}


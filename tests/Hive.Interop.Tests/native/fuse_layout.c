/* Prints the x86_64 layout of every structure Hive.Interop mirrors, one "name value" per line.
 * Built and run by FuseLayoutTests; the C# side compares each line with Marshal.SizeOf/OffsetOf. */
#define FUSE_USE_VERSION 314
#define _FILE_OFFSET_BITS 64
#include <fuse.h>
#include <fuse_lowlevel.h>
#include <sys/uio.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#define SIZE(t) printf("sizeof(" #t ") %zu\n", sizeof(struct t))
#define OFF(t, f) printf(#t "." #f " %zu\n", offsetof(struct t, f))

int main(void) {
    SIZE(stat); OFF(stat, st_ino); OFF(stat, st_nlink); OFF(stat, st_mode); OFF(stat, st_uid); OFF(stat, st_gid);
    OFF(stat, st_rdev); OFF(stat, st_size); OFF(stat, st_blksize); OFF(stat, st_blocks);
    OFF(stat, st_atim); OFF(stat, st_mtim); OFF(stat, st_ctim);
    SIZE(statvfs); OFF(statvfs, f_blocks); OFF(statvfs, f_files); OFF(statvfs, f_fsid); OFF(statvfs, f_namemax);
    SIZE(timespec);
    SIZE(fuse_file_info); OFF(fuse_file_info, flags); OFF(fuse_file_info, fh); OFF(fuse_file_info, lock_owner); OFF(fuse_file_info, poll_events);
    SIZE(fuse_args); OFF(fuse_args, argv); OFF(fuse_args, allocated);
    SIZE(fuse_context); OFF(fuse_context, uid); OFF(fuse_context, pid); OFF(fuse_context, private_data); OFF(fuse_context, umask);
    SIZE(fuse_config); OFF(fuse_config, entry_timeout); OFF(fuse_config, negative_timeout); OFF(fuse_config, attr_timeout);
    OFF(fuse_config, hard_remove); OFF(fuse_config, use_ino); OFF(fuse_config, auto_cache); OFF(fuse_config, ac_attr_timeout);
    OFF(fuse_config, nullpath_ok); OFF(fuse_config, modules); OFF(fuse_config, debug);
    SIZE(iovec); OFF(iovec, iov_len);
    SIZE(fuse_custom_io); OFF(fuse_custom_io, writev); OFF(fuse_custom_io, read); OFF(fuse_custom_io, splice_receive); OFF(fuse_custom_io, splice_send);
    SIZE(fuse_operations);
    OFF(fuse_operations, getattr); OFF(fuse_operations, rename); OFF(fuse_operations, open); OFF(fuse_operations, read);
    OFF(fuse_operations, write); OFF(fuse_operations, statfs); OFF(fuse_operations, fsync); OFF(fuse_operations, setxattr);
    OFF(fuse_operations, readdir); OFF(fuse_operations, init); OFF(fuse_operations, access); OFF(fuse_operations, create);
    OFF(fuse_operations, utimens); OFF(fuse_operations, fallocate); OFF(fuse_operations, lseek);
    /* fuse_file_info bit field: where direct_io and keep_cache land in the word after flags. */
    struct fuse_file_info fi = {0};
    fi.direct_io = 1; printf("fuse_file_info.direct_io_word %u\n", *(unsigned int *)((char *)&fi + 4));
    fi.direct_io = 0; fi.keep_cache = 1; printf("fuse_file_info.keep_cache_word %u\n", *(unsigned int *)((char *)&fi + 4));
    return 0;
}

/* Layout of the loop(4) ioctl structs as the kernel headers define them (Libc.LoopInfo64, Libc.LoopConfig mirror them). */
#include <linux/loop.h>
#include <stddef.h>
#include <stdio.h>

int main(void)
{
    printf("sizeof(loop_info64) %zu\n", sizeof(struct loop_info64));
    printf("loop_info64.lo_device %zu\n", offsetof(struct loop_info64, lo_device));
    printf("loop_info64.lo_inode %zu\n", offsetof(struct loop_info64, lo_inode));
    printf("loop_info64.lo_flags %zu\n", offsetof(struct loop_info64, lo_flags));
    printf("loop_info64.lo_file_name %zu\n", offsetof(struct loop_info64, lo_file_name));
    printf("loop_info64.lo_init %zu\n", offsetof(struct loop_info64, lo_init));
    printf("sizeof(loop_config) %zu\n", sizeof(struct loop_config));
    printf("loop_config.fd %zu\n", offsetof(struct loop_config, fd));
    printf("loop_config.block_size %zu\n", offsetof(struct loop_config, block_size));
    printf("loop_config.info %zu\n", offsetof(struct loop_config, info));
    printf("LOOP_CONFIGURE %d\n", LOOP_CONFIGURE);
    printf("LOOP_GET_STATUS64 %d\n", LOOP_GET_STATUS64);
    printf("LOOP_CTL_GET_FREE %d\n", LOOP_CTL_GET_FREE);
    printf("LO_FLAGS_AUTOCLEAR %d\n", LO_FLAGS_AUTOCLEAR);
    printf("LO_FLAGS_DIRECT_IO %d\n", LO_FLAGS_DIRECT_IO);
    return 0;
}

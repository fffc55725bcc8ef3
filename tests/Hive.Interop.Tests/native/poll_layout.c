/* Layout of struct pollfd as the C library sees it (Libc.PollFd mirrors it). */
#include <poll.h>
#include <stddef.h>
#include <stdio.h>

int main(void)
{
    printf("sizeof %zu\n", sizeof(struct pollfd));
    printf("fd %zu\n", offsetof(struct pollfd, fd));
    printf("events %zu\n", offsetof(struct pollfd, events));
    printf("revents %zu\n", offsetof(struct pollfd, revents));
    return 0;
}

/*
 * Seccomp probe for runtime/tests/seccomp_docker.rs: makes a fixed list of
 * raw system calls and prints one line per call, `name ret errno`:
 *   name  the case (a syscall name, with a suffix when the args matter)
 *   ret   the return value when it is the same on every run, `ok` for a
 *         success whose value is not (an fd, a pid, an address), -1 on error
 *   errno the error's name (EPERM, ENOSYS...), or `-` on success
 * Before the calls it prints `arch <x86_64|i386>` and the NoNewPrivs and
 * Seccomp lines of /proc/self/status as `status <field> <value>`.
 *
 * The calls bypass libc: `syscall` on x86_64, `int $0x80` on i386 (built
 * with gcc -m32), so the 32-bit build exercises the filter's x86 branch.
 * On i386 the sockets go through both socketcall(2) and socket(2).
 *
 * Arguments are chosen so that nothing harmful happens even if the call is
 * allowed, and, where the kernel allows it, so that the kernel's own answer
 * differs from the profile's EPERM (a path that does not exist, an invalid
 * flag, a NULL pointer): the test runs the probe once without seccomp to
 * see those answers. Calls that change the calling process (unshare,
 * personality, clone) run in a forked child, which reports through its
 * exit status.
 *
 *   probe            run every case
 *   probe --arch     print the arch line only (can this kernel run me?)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

#define AF_VSOCK_FAMILY 40
#define PTRACE_GETREGS_REQ 12
#define SOCKETCALL_SOCKET 1
#define UFFD_USER_MODE_ONLY_FLAG 1
#define ARCH_GET_FS_CODE 0x1003
#define AT_FDCWD_VALUE (-100)

/* raw(nr, a..f): the kernel's answer, a negative errno on failure. */
#if defined(__x86_64__)
#define ARCH_NAME "x86_64"
static long raw(long nr, long a, long b, long c, long d, long e, long f)
{
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	long ret;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}
#elif defined(__i386__)
#define ARCH_NAME "i386"
/* In assembly: six arguments need ebx and ebp, which inline asm cannot
 * always claim. cdecl: nr at 20(%esp) after the four pushes. */
long raw(long nr, long a, long b, long c, long d, long e, long f);
__asm__(".text\n"
	".globl raw\n"
	".type raw, @function\n"
	"raw:\n"
	"  push %ebp\n"
	"  push %edi\n"
	"  push %esi\n"
	"  push %ebx\n"
	"  mov 20(%esp), %eax\n"
	"  mov 24(%esp), %ebx\n"
	"  mov 28(%esp), %ecx\n"
	"  mov 32(%esp), %edx\n"
	"  mov 36(%esp), %esi\n"
	"  mov 40(%esp), %edi\n"
	"  mov 44(%esp), %ebp\n"
	"  int $0x80\n"
	"  pop %ebx\n"
	"  pop %esi\n"
	"  pop %edi\n"
	"  pop %ebp\n"
	"  ret\n"
	".size raw, .-raw\n");
#else
#error "the probe is for x86_64 and i386"
#endif

#define RAW0(nr) raw(nr, 0, 0, 0, 0, 0, 0)
#define RAW1(nr, a) raw(nr, (long)(a), 0, 0, 0, 0, 0)
#define RAW2(nr, a, b) raw(nr, (long)(a), (long)(b), 0, 0, 0, 0)
#define RAW3(nr, a, b, c) raw(nr, (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define RAW5(nr, a, b, c, d, e) \
	raw(nr, (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), 0)
#define RAW6(nr, a, b, c, d, e, f) \
	raw(nr, (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f))

static void report(const char *name, long ret, int show_value)
{
	if (ret < 0 && ret > -4096) {
		const char *e = strerrorname_np((int)-ret);
		if (e)
			printf("%s -1 %s\n", name, e);
		else
			printf("%s -1 E%ld\n", name, -ret);
	} else if (show_value) {
		printf("%s %ld -\n", name, ret);
	} else {
		printf("%s ok -\n", name);
	}
}

/* Reap `pid` and turn its end into a raw answer: an exit status n > 0 is
 * the child's -errno, 0 success; a signal prints on its own line. */
static long reap(const char *name, long pid)
{
	int status = 0;
	if (pid <= 0)
		return pid;
	if (RAW5(SYS_wait4, pid, &status, __WALL, 0, 0) < 0) {
		printf("%s wait4 failed\n", name);
		return 0;
	}
	if (WIFSIGNALED(status)) {
		printf("%s killed by signal %d\n", name, WTERMSIG(status));
		return 0;
	}
	return -(long)WEXITSTATUS(status);
}

static void child_exit(long ret)
{
	RAW1(SYS_exit_group, ret < 0 ? -ret : 0);
}

/* A raw clone or fork whose child exits at once; the parent reaps it. */
static long spawn_and_reap(const char *name, long ret)
{
	if (ret == 0)
		child_exit(0);
	return reap(name, ret);
}

/* Run one call in a forked child, so that what it changes (a namespace, the
 * personality) does not leak into the next cases. */
#define IN_CHILD(name, call)                                  \
	do {                                                  \
		fflush(stdout);                               \
		pid_t child_ = fork();                        \
		if (child_ == 0)                              \
			child_exit(call);                     \
		if (child_ < 0) {                             \
			printf("%s fork failed\n", name);     \
			break;                                \
		}                                             \
		report(name, reap(name, child_), 1);          \
	} while (0)

static void print_status(void)
{
	char line[256];
	FILE *f = fopen("/proc/self/status", "r");
	if (!f) {
		printf("status unreadable\n");
		return;
	}
	while (fgets(line, sizeof line, f)) {
		char value[64];
		if (sscanf(line, "NoNewPrivs: %63s", value) == 1)
			printf("status NoNewPrivs %s\n", value);
		else if (sscanf(line, "Seccomp: %63s", value) == 1)
			printf("status Seccomp %s\n", value);
	}
	fclose(f);
}

static long close_if_fd(long ret)
{
	if (ret >= 0)
		RAW1(SYS_close, ret);
	return ret;
}

static void sockets(void)
{
	report("socket_inet", close_if_fd(RAW3(SYS_socket, AF_INET, SOCK_STREAM, 0)), 0);
	report("socket_unix", close_if_fd(RAW3(SYS_socket, AF_UNIX, SOCK_STREAM, 0)), 0);
	report("socket_vsock",
	       close_if_fd(RAW3(SYS_socket, AF_VSOCK_FAMILY, SOCK_STREAM, 0)), 0);
#ifdef __i386__
	static long inet[3] = {AF_INET, SOCK_STREAM, 0};
	static long unix_[3] = {AF_UNIX, SOCK_STREAM, 0};
	static long vsock[3] = {AF_VSOCK_FAMILY, SOCK_STREAM, 0};
	report("socketcall_inet", close_if_fd(RAW2(SYS_socketcall, SOCKETCALL_SOCKET, inet)), 0);
	report("socketcall_unix", close_if_fd(RAW2(SYS_socketcall, SOCKETCALL_SOCKET, unix_)), 0);
	report("socketcall_vsock", close_if_fd(RAW2(SYS_socketcall, SOCKETCALL_SOCKET, vsock)), 0);
#endif
}

static void memory(void)
{
#ifdef __i386__
	long addr = RAW6(SYS_mmap2, 0, 4096, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	report("mmap2", addr, 0);
#else
	long addr = RAW6(SYS_mmap, 0, 4096, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	report("mmap", addr, 0);
#endif
	if (addr < 0 && addr > -4096)
		return;
	report("munmap", RAW2(SYS_munmap, addr, 4096), 1);
}

static void processes(void)
{
	fflush(stdout);
	report("fork", spawn_and_reap("fork", RAW0(SYS_fork)), 1);
	fflush(stdout);
	report("clone", spawn_and_reap("clone", RAW2(SYS_clone, SIGCHLD, 0)), 1);
	fflush(stdout);
	report("clone_newns",
	       spawn_and_reap("clone_newns", RAW2(SYS_clone, SIGCHLD | CLONE_NEWNS, 0)), 1);
	fflush(stdout);
	report("clone_newuser",
	       spawn_and_reap("clone_newuser", RAW2(SYS_clone, SIGCHLD | CLONE_NEWUSER, 0)), 1);
	fflush(stdout);
	/* clone3 with no clone_args: the kernel says EINVAL, Docker 20.10's
	 * profile ENOSYS (so that glibc falls back to clone). */
	report("clone3", spawn_and_reap("clone3", RAW2(SYS_clone3, 0, 0)), 1);
	IN_CHILD("unshare_newns", RAW1(SYS_unshare, CLONE_NEWNS));
	IN_CHILD("unshare_newuser", RAW1(SYS_unshare, CLONE_NEWUSER));
	IN_CHILD("setns", RAW2(SYS_setns, -1, 0));
}

static void personalities(void)
{
	report("personality_0", RAW1(SYS_personality, 0), 1);
	report("personality_query", RAW1(SYS_personality, 0xffffffffUL), 1);
	IN_CHILD("personality_linux32", RAW1(SYS_personality, 0x0008));
	IN_CHILD("personality_ffff", RAW1(SYS_personality, 0xffff));
}

static void mounts_and_keys(void)
{
	report("mount", RAW5(SYS_mount, "none", "/nonexistent", "tmpfs", 0, 0), 1);
	report("umount2", RAW2(SYS_umount2, "/", 0x100), 1);
	report("open_tree", close_if_fd(RAW3(SYS_open_tree, AT_FDCWD_VALUE, "/", 0)), 0);
	report("chroot", RAW1(SYS_chroot, "/nonexistent"), 1);
	report("keyctl", RAW2(SYS_keyctl, 9999, 0), 1);
	report("add_key", RAW5(SYS_add_key, 0, 0, 0, 0, 0), 1);
	report("request_key", RAW5(SYS_request_key, 0, 0, 0, 0, 0), 1);
}

static void privileged(void)
{
	report("ptrace", RAW3(SYS_ptrace, PTRACE_GETREGS_REQ, RAW0(SYS_getpid), 0), 1);
	report("bpf", RAW3(SYS_bpf, 9999, 0, 0), 1);
	report("perf_event_open", RAW5(SYS_perf_event_open, 0, 0, -1, -1, 0), 1);
	report("kexec_load", RAW5(SYS_kexec_load, 0, 0, 0, 0, 0), 1);
	report("open_by_handle_at", RAW3(SYS_open_by_handle_at, AT_FDCWD_VALUE, 0, 0), 1);
	report("name_to_handle_at",
	       RAW5(SYS_name_to_handle_at, AT_FDCWD_VALUE, "/", 0, 0, 0), 1);
	report("swapon", RAW2(SYS_swapon, 0, 0), 1);
	report("acct", RAW1(SYS_acct, 0), 1);
	report("userfaultfd",
	       close_if_fd(RAW1(SYS_userfaultfd, UFFD_USER_MODE_ONLY_FLAG | 0x8000)), 1);
	report("get_mempolicy", RAW5(SYS_get_mempolicy, 0, 0, 0, 0, 0), 1);
	report("process_vm_readv",
	       RAW6(SYS_process_vm_readv, RAW0(SYS_getpid), 0, 0, 0, 0, 0), 1);
	report("iopl", RAW1(SYS_iopl, 0), 1);
}

static void arch_specific(void)
{
	long fs = 0;
	report("arch_prctl", RAW2(SYS_arch_prctl, ARCH_GET_FS_CODE, &fs), 1);
#ifdef __i386__
	/* A 64-bit kernel has no vm86: ENOSYS from the kernel, EPERM from the
	 * profile (which does not list it). */
	report("vm86old", RAW1(SYS_vm86old, 0), 1);
	report("vm86", RAW2(SYS_vm86, 0, 0), 1);
#endif
}

int main(int argc, char **argv)
{
	static char cwd[256];
	static struct utsname uts;

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("arch %s\n", ARCH_NAME);
	if (argc > 1 && strcmp(argv[1], "--arch") == 0)
		return 0;
	print_status();
	report("getpid", RAW0(SYS_getpid), 1);
	report("getcwd", RAW2(SYS_getcwd, cwd, sizeof cwd), 1);
	report("uname", RAW1(SYS_uname, &uts), 1);
	sockets();
	memory();
	processes();
	personalities();
	mounts_and_keys();
	privileged();
	arch_specific();
	printf("done\n");
	return 0;
}

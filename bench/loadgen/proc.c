/* proc.c - CPU seconds and memory of a process, and what machine this is. */
#include "lg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

static double one_cpu(int pid);

/* CPU seconds of pid and of its children now running (a server's
 * workers: `workers = N`, whose master forks them). */
double lg_proc_cpu(int pid)
{
	char path[96];
	double sum = one_cpu(pid);
	FILE *f;
	int child;

	if (sum < 0)
		return sum;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", pid, pid);
	if ((f = fopen(path, "r"))) {
		while (fscanf(f, "%d", &child) == 1) {
			double c = one_cpu(child);
			if (c > 0)
				sum += c;
		}
		fclose(f);
	}
	return sum;
}

static double one_cpu(int pid)
{
	char path[64], buf[1024];
	unsigned long utime, stime;
	const char *p;
	FILE *f;
	size_t n;

	if (pid <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');	/* the command name may hold spaces */
	if (!p)
		return -1;
	/* after ')': state ppid pgrp session tty tpgid flags minflt cminflt
	 * majflt cmajflt utime stime */
	if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
		   &utime, &stime) != 2)
		return -1;
	return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

long lg_proc_rss_kb(int pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	if (pid <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "VmRSS:", 6) == 0) {
			kb = strtol(line + 6, NULL, 10);
			break;
		}
	fclose(f);
	return kb;
}

double lg_self_cpu(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return -1;
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* The first line of file that starts with key, value part only. */
static void file_field(const char *file, const char *key, char *out, size_t cap)
{
	char line[512];
	FILE *f = fopen(file, "r");

	snprintf(out, cap, "?");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *v;

		if (strncmp(line, key, strlen(key)) != 0)
			continue;
		v = strchr(line, ':');
		if (!v)
			continue;
		v++;
		while (*v == ' ' || *v == '\t')
			v++;
		v[strcspn(v, "\n")] = '\0';
		snprintf(out, cap, "%s", v);
		break;
	}
	fclose(f);
}

void lg_sysinfo(struct lg_buf *out)
{
	char model[200], mem[64];
	struct utsname u;

	file_field("/proc/cpuinfo", "model name", model, sizeof(model));
	file_field("/proc/meminfo", "MemTotal", mem, sizeof(mem));
	if (uname(&u) != 0)
		snprintf(u.release, sizeof(u.release), "?");
	lg_buf_printf(out, "%ld CPUs (%s), %s memory, Linux %s",
		      sysconf(_SC_NPROCESSORS_ONLN), model, mem, u.release);
}

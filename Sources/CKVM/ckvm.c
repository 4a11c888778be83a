#define _GNU_SOURCE
#include "ckvm.h"
#include <errno.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

const unsigned long CKVM_GET_API_VERSION = KVM_GET_API_VERSION;
const unsigned long CKVM_CREATE_VM = KVM_CREATE_VM;
const unsigned long CKVM_CHECK_EXTENSION = KVM_CHECK_EXTENSION;
const unsigned long CKVM_GET_VCPU_MMAP_SIZE = KVM_GET_VCPU_MMAP_SIZE;
const unsigned long CKVM_CREATE_VCPU = KVM_CREATE_VCPU;
const unsigned long CKVM_SET_USER_MEMORY_REGION = KVM_SET_USER_MEMORY_REGION;
const unsigned long CKVM_RUN = KVM_RUN;
const unsigned long CKVM_GET_REGS = KVM_GET_REGS;
const unsigned long CKVM_SET_REGS = KVM_SET_REGS;
const unsigned long CKVM_GET_SREGS = KVM_GET_SREGS;
const unsigned long CKVM_SET_SREGS = KVM_SET_SREGS;
const unsigned long CKVM_SET_TSS_ADDR = KVM_SET_TSS_ADDR;
const unsigned long CKVM_GET_SUPPORTED_CPUID = KVM_GET_SUPPORTED_CPUID;
const unsigned long CKVM_SET_CPUID2 = KVM_SET_CPUID2;
const unsigned long CKVM_TRANSLATE = KVM_TRANSLATE;
const unsigned long CKVM_CREATE_IRQCHIP = KVM_CREATE_IRQCHIP;
const unsigned long CKVM_SET_IDENTITY_MAP_ADDR = KVM_SET_IDENTITY_MAP_ADDR;

const uint32_t CKVM_MEM_READONLY = KVM_MEM_READONLY;
const int CKVM_CAP_USER_MEMORY = KVM_CAP_USER_MEMORY;
const int CKVM_CAP_READONLY_MEM = KVM_CAP_READONLY_MEM;
const int CKVM_CAP_NR_MEMSLOTS = KVM_CAP_NR_MEMSLOTS;
const int CKVM_CAP_IRQCHIP = KVM_CAP_IRQCHIP;
const int CKVM_CAP_PIT2 = KVM_CAP_PIT2;
const int CKVM_CAP_IMMEDIATE_EXIT = KVM_CAP_IMMEDIATE_EXIT;
const int CKVM_CAP_SET_TSS_ADDR = KVM_CAP_SET_TSS_ADDR;
const int CKVM_CAP_SET_IDENTITY_MAP_ADDR = KVM_CAP_SET_IDENTITY_MAP_ADDR;

int ckvm_ioctl_ptr(int fd, unsigned long request, void *argument) { return ioctl(fd, request, argument); }
int ckvm_ioctl_int(int fd, unsigned long request, unsigned long argument) { return ioctl(fd, request, argument); }
int ckvm_errno(void) { return errno; }

uint32_t ckvm_exit_reason(const struct kvm_run *run) { return run->exit_reason; }
uint8_t ckvm_io_direction(const struct kvm_run *run) { return run->io.direction; }
uint8_t ckvm_io_size(const struct kvm_run *run) { return run->io.size; }
uint16_t ckvm_io_port(const struct kvm_run *run) { return run->io.port; }
uint32_t ckvm_io_count(const struct kvm_run *run) { return run->io.count; }
uint64_t ckvm_io_data_offset(const struct kvm_run *run) { return run->io.data_offset; }
uint64_t ckvm_mmio_address(const struct kvm_run *run) { return run->mmio.phys_addr; }
uint8_t *ckvm_mmio_data(struct kvm_run *run) { return run->mmio.data; }
uint32_t ckvm_mmio_length(const struct kvm_run *run) { return run->mmio.len; }
uint8_t ckvm_mmio_is_write(const struct kvm_run *run) { return run->mmio.is_write; }
uint32_t ckvm_internal_suberror(const struct kvm_run *run) { return run->internal.suberror; }
uint64_t ckvm_fail_entry_reason(const struct kvm_run *run) { return run->fail_entry.hardware_entry_failure_reason; }

int ckvm_enable_user_msr_exits(int vm_fd) {
    struct kvm_enable_cap cap = {0};
    cap.cap = KVM_CAP_X86_USER_SPACE_MSR;
    cap.args[0] = KVM_MSR_EXIT_REASON_FILTER;
    return ioctl(vm_fd, KVM_ENABLE_CAP, &cap);
}

int ckvm_set_msr_filter(int vm_fd, int default_deny, const uint8_t *read_low, const uint8_t *read_high,
                        const uint8_t *write_low, const uint8_t *write_high) {
    struct kvm_msr_filter filter = {0};
    filter.flags = default_deny ? KVM_MSR_FILTER_DEFAULT_DENY : KVM_MSR_FILTER_DEFAULT_ALLOW;
    const uint8_t *maps[4] = { read_low, read_high, write_low, write_high };
    for (int i = 0; i < 4; i++) {
        filter.ranges[i].flags = i < 2 ? KVM_MSR_FILTER_READ : KVM_MSR_FILTER_WRITE;
        filter.ranges[i].base = (i % 2 == 0) ? 0x0 : 0xC0000000u;
        filter.ranges[i].nmsrs = 0x2000;
        filter.ranges[i].bitmap = (uint8_t *)maps[i];
    }
    return ioctl(vm_fd, KVM_X86_SET_MSR_FILTER, &filter);
}

uint32_t ckvm_msr_index(const struct kvm_run *run) { return run->msr.index; }
uint64_t ckvm_msr_data(const struct kvm_run *run) { return run->msr.data; }
void ckvm_msr_complete(struct kvm_run *run, uint64_t data, uint8_t error) { run->msr.data = data; run->msr.error = error; }

int ckvm_get_feature_msr(int kvm_fd, uint32_t index, uint64_t *value) {
    struct { struct kvm_msrs header; struct kvm_msr_entry entry; } request = {0};
    request.header.nmsrs = 1;
    request.entry.index = index;
    int r = ioctl(kvm_fd, KVM_GET_MSRS, &request);
    if (r == 1) *value = request.entry.data;
    return r;
}

int ckvm_get_supported_cpuid(int kvm_fd, struct kvm_cpuid_entry2 *entries, uint32_t *count) {
    size_t bytes = sizeof(struct kvm_cpuid2) + (size_t)*count * sizeof(struct kvm_cpuid_entry2);
    struct kvm_cpuid2 *list = calloc(1, bytes);
    if (!list) { errno = ENOMEM; return -1; }
    list->nent = *count;
    int r = ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, list);
    if (r >= 0) {
        memcpy(entries, list->entries, (size_t)list->nent * sizeof(struct kvm_cpuid_entry2));
        *count = list->nent;
    }
    int saved = errno;
    free(list);
    errno = saved;
    return r;
}

int ckvm_set_cpuid2(int vcpu_fd, const struct kvm_cpuid_entry2 *entries, uint32_t count) {
    size_t bytes = sizeof(struct kvm_cpuid2) + (size_t)count * sizeof(struct kvm_cpuid_entry2);
    struct kvm_cpuid2 *list = calloc(1, bytes);
    if (!list) { errno = ENOMEM; return -1; }
    list->nent = count;
    memcpy(list->entries, entries, (size_t)count * sizeof(struct kvm_cpuid_entry2));
    int r = ioctl(vcpu_fd, KVM_SET_CPUID2, list);
    int saved = errno;
    free(list);
    errno = saved;
    return r;
}

int ckvm_create_pit2(int vm_fd) {
    struct kvm_pit_config config;
    memset(&config, 0, sizeof config);
    return ioctl(vm_fd, KVM_CREATE_PIT2, &config);
}

int ckvm_irq_line(int vm_fd, uint32_t irq, uint32_t level) {
    struct kvm_irq_level line;
    memset(&line, 0, sizeof line);
    line.irq = irq;
    line.level = level;
    return ioctl(vm_fd, KVM_IRQ_LINE, &line);
}

void ckvm_set_immediate_exit(struct kvm_run *run, uint8_t value) { __atomic_store_n(&run->immediate_exit, value, __ATOMIC_SEQ_CST); }

#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

static __thread struct kvm_run *watchdog_run;
static __thread timer_t watchdog_timer;
static __thread int watchdog_armed;
static __thread int watchdog_signal;
static __thread sigset_t watchdog_old_mask;

static void ckvm_watchdog_fired(int signo) {
    (void)signo;
    struct kvm_run *run = watchdog_run;
    if (run) __atomic_store_n(&run->immediate_exit, 1, __ATOMIC_SEQ_CST);
}

int ckvm_arm_watchdog(struct kvm_run *run, int signo, long long nanoseconds) {
    if (watchdog_armed) ckvm_disarm_watchdog();
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = ckvm_watchdog_fired;
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0;  /* no SA_RESTART: KVM_RUN must see EINTR */
    if (sigaction(signo, &action, NULL) < 0) return -1;

    struct sigevent event;
    memset(&event, 0, sizeof event);
    event.sigev_notify = SIGEV_THREAD_ID;
    event.sigev_signo = signo;
    event.sigev_notify_thread_id = gettid();
    timer_t timer;
    if (timer_create(CLOCK_MONOTONIC, &event, &timer) < 0) return -1;

    watchdog_run = run;
    watchdog_timer = timer;
    watchdog_signal = signo;
    watchdog_armed = 1;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, signo);
    pthread_sigmask(SIG_UNBLOCK, &set, &watchdog_old_mask);

    struct itimerspec when;
    memset(&when, 0, sizeof when);
    when.it_value.tv_sec = nanoseconds / 1000000000LL;
    when.it_value.tv_nsec = nanoseconds % 1000000000LL;
    if (when.it_value.tv_sec == 0 && when.it_value.tv_nsec == 0) when.it_value.tv_nsec = 1;
    if (timer_settime(timer, 0, &when, NULL) < 0) {
        int saved = errno;
        ckvm_disarm_watchdog();
        errno = saved;
        return -1;
    }
    return 0;
}

void ckvm_disarm_watchdog(void) {
    if (!watchdog_armed) return;
    timer_delete(watchdog_timer);
    pthread_sigmask(SIG_SETMASK, &watchdog_old_mask, NULL);
    watchdog_run = NULL;
    watchdog_armed = 0;
}

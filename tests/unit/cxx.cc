/*
 * cxx.cc — C++ programs on strata: operator new/delete (strata's own, the fast paths), aligned
 * new, out of memory as C++ has it (new_handler, std::bad_alloc, nullptr from nothrow new),
 * containers, strings, exceptions, threads and thread_local destructors.
 */
#include <dlfcn.h>
#include <malloc.h>
#include <sys/resource.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "harness.h"
#include "strata.h"

static bool is_strata_block(void *p) {
    // strata's malloc_usable_size aborts on pointers it did not hand out
    return malloc_usable_size(p) > 0;
}

static void new_and_delete(void) {
    int *one = new int(42);
    CHECK(*one == 42 && is_strata_block(one));
    delete one;
    int *many = new int[1000];
    for (int i = 0; i < 1000; i++) many[i] = i;
    CHECK(many[999] == 999);
    delete[] many;
    std::nothrow_t nt;
    char *big = new (nt) char[1 << 20];
    CHECK(big != nullptr);
    delete[] big;
}

struct alignas(256) Wide {
    char data[300];
};

static void aligned_new(void) {
    Wide *w = new Wide;
    CHECK((reinterpret_cast<uintptr_t>(w) & 255) == 0);
    delete w;
    Wide *ws = new Wide[10];
    CHECK((reinterpret_cast<uintptr_t>(ws) & 255) == 0);
    delete[] ws;
}

static void containers(void) {
    std::map<std::string, std::vector<int>> m;
    for (int i = 0; i < 100000; i++) m[std::to_string(i % 3000)].push_back(i);
    size_t total = 0;
    for (auto &kv : m) total += kv.second.size();
    CHECK(total == 100000 && m.size() == 3000);
    std::unordered_map<int, std::string> u;
    for (int i = 0; i < 50000; i++) u[i] = std::string(static_cast<size_t>(i % 100), 'x');
    CHECK(u[99].size() == 99);
    std::vector<std::unique_ptr<std::string>> v;
    for (int i = 0; i < 20000; i++) v.emplace_back(new std::string(200, 'y'));
    v.erase(v.begin(), v.begin() + 10000);
    CHECK(v.size() == 10000 && (*v[0])[199] == 'y');
}

static void exceptions(void) {
    int caught = 0;
    for (int i = 0; i < 10000; i++) {
        try {
            throw std::runtime_error(std::string("failure number ") + std::to_string(i));
        } catch (const std::exception &e) {
            caught += e.what()[0] == 'f';
        }
    }
    CHECK(caught == 10000);
    bool bad_alloc = false;
    try {
        std::vector<char> huge;
        huge.reserve(static_cast<size_t>(1) << 62);
    } catch (const std::bad_alloc &) {
        bad_alloc = true;
    } catch (const std::length_error &) {
        bad_alloc = true;
    }
    CHECK(bad_alloc);
}

struct Tracker {
    std::vector<int> data = std::vector<int>(1000, 1);
    ~Tracker() {
        // thread_local destructors run at thread exit and may allocate
        std::string s(5000, 'z');
        done.fetch_add(static_cast<int>(s.size() == 5000 && data[999] == 1));
    }
    static std::atomic<int> done;
};
std::atomic<int> Tracker::done{0};
thread_local Tracker tracker;

static void threads_and_thread_locals(void) {
    std::vector<std::thread> ts;
    std::atomic<long> sum{0};
    for (int t = 0; t < 16; t++) {
        ts.emplace_back([&sum, t] {
            tracker.data[0] = t;
            std::vector<std::string> mine;
            for (int i = 0; i < 20000; i++) mine.push_back(std::to_string(i));
            long s = 0;
            for (auto &x : mine) s += static_cast<long>(x.size());
            sum += s;
        });
    }
    for (auto &t : ts) t.join();
    CHECK(sum == 16L * 88890);
    CHECK(Tracker::done.load() == 16);
}

/* operator new and delete are strata's, not libstdc++'s wrappers around malloc and free. */
static bool from_strata(void *fn) {
    Dl_info info;
    return dladdr(fn, &info) && info.dli_fname && strstr(info.dli_fname, "libstrata");
}
static void operators_are_strata_s(void) {
    void *(*nw)(size_t) = &::operator new;
    void *(*na)(size_t) = &::operator new[];
    void (*dl)(void *) noexcept = &::operator delete;
    void (*da)(void *) noexcept = &::operator delete[];
    void *(*nal)(size_t, std::align_val_t) = &::operator new;
    void (*dsz)(void *, size_t) noexcept = &::operator delete;
    CHECK(from_strata((void *)nw) && from_strata((void *)na) && from_strata((void *)dl) &&
          from_strata((void *)da) && from_strata((void *)nal) && from_strata((void *)dsz));
}

/* Out of memory: new calls the new_handler, which may make room, then throws std::bad_alloc;
 * nothrow new returns nullptr. */
static char *reserve;
static int handler_calls;
static void make_room() {
    handler_calls++;
    if (reserve) {
        delete[] reserve;
        reserve = nullptr;
    } else {
        std::set_new_handler(nullptr); // nothing left: the next failure throws
    }
}
static void out_of_memory_child(void *) {
    th_limit_as((size_t)256 << 20);
    reserve = new char[(size_t)200 << 20];
    reserve[0] = 1;
    std::set_new_handler(make_room);
    char *p = new char[(size_t)100 << 20]; // fits only once the handler freed the reserve
    if (!p || handler_calls != 1) _exit(1);
    p[0] = 1;
    bool threw = false;
    try {
        char *q = new char[(size_t)1 << 30];
        q[0] = 1;
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    if (!threw || handler_calls != 2) _exit(2);
    char *volatile none = new (std::nothrow) char[(size_t)1 << 30];
    if (none != nullptr) _exit(3);
    try {
        th_use(new (std::align_val_t(4096)) char[(size_t)1 << 30]); // (a use: new may not be elided)
        _exit(4);
    } catch (const std::bad_alloc &) {
    }
    delete[] p;
}
static void new_out_of_memory_is_bad_alloc(void) {
    SKIP_IF_EMULATED(TH_EMU_AS);
    CHECK_CHILD_OK(out_of_memory_child, nullptr);
}

int main() {
    RUN(new_and_delete);
    RUN(operators_are_strata_s);
    RUN(new_out_of_memory_is_bad_alloc);
    RUN(aligned_new);
    RUN(containers);
    RUN(exceptions);
    RUN(threads_and_thread_locals);
    return 0;
}

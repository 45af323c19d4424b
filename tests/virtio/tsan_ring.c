/* Driver and device on one ring in two threads: descriptors, indices and used entries only (no payload copies). */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include "vring.h"
#define NUM 8
static _Alignas(16) uint8_t ring[4096];
static _Alignas(16) uint8_t bufs[NUM * 64];
static struct rp_region region;
static struct rp_vq drv, dev;
static struct rp_slot slots[NUM];
#define ROUNDS 20000
static void *device(void *arg)
{
	(void)arg;
	unsigned done = 0;
	while (done < ROUNDS) {
		struct rp_desc d;
		uint16_t head;
		int n = rp_dev_pop(&dev, &d, 1, &head);
		if (n < 0) { printf("dev err %d\n", n); return 0; }
		if (n == 0) continue;
		rp_dev_push(&dev, head, 0);
		rp_dev_publish(&dev);
		done++;
	}
	return 0;
}
int main(void)
{
	region.da = 0x1000; region.size = sizeof(bufs); region.host = bufs;
	uint8_t *desc = ring, *avail = ring + 16 * NUM, *used = ring + 1024;
	rp_vq_init(&drv, RP_ROLE_DRIVER, NUM, 0, desc, avail, used, &region, 1, slots, 0);
	rp_vq_init(&dev, RP_ROLE_DEVICE, NUM, 0, desc, avail, used, &region, 1, 0, 0);
	pthread_t t;
	pthread_create(&t, 0, device, 0);
	unsigned sent = 0, got = 0;
	while (got < ROUNDS) {
		if (sent < ROUNDS) {
			struct rp_buf b = { 0x1000 + 64 * (sent % NUM), 64, 0, 0 };
			if (rp_drv_add(&drv, &b, 1, sent) >= 0) { sent++; rp_drv_publish(&drv); }
		}
		struct rp_used u[NUM];
		int n = rp_drv_get_used(&drv, u, NUM);
		if (n < 0) { printf("drv err %d\n", n); return 1; }
		got += (unsigned)n;
	}
	pthread_join(t, 0);
	printf("ok %u\n", got);
	return 0;
}

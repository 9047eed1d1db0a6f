/*
 * ctl_migrate.h - starlingctl migrate --from lmdb|sql --to sql|lmdb:
 * every record of one storage engine copied into an empty other
 * (tools/ctl_migrate.c).
 */
#ifndef STARLING_CTL_MIGRATE_H
#define STARLING_CTL_MIGRATE_H

/* argv[0] is "migrate". 0, 1 (failed, said on stderr) or 2 (usage). */
int ctl_migrate(int argc, char **argv);

#endif

#ifndef TM_VERSION_H
#define TM_VERSION_H
#define TMQTT_VERSION "0.1.0"
#endif

set terminal pngcairo size 900,560 noenhanced font 'DejaVu Sans,10'
set output 'latency-rate.png'
set title 'Latency vs publication rate (1 publisher, 1 subscriber, QoS 0, 64 B)'
set xlabel 'offered msg/s'
set ylabel 'end-to-end latency (ms)'
set logscale y
set logscale x 10
set grid
set key left top
plot 'latency-rate.dat' index 0 with linespoints lw 2 dt 1 title 'tmqtt p50', \
  'latency-rate.dat' index 1 with linespoints lw 2 dt 2 title 'tmqtt p99', \
  'latency-rate.dat' index 2 with linespoints lw 2 dt 1 title 'mosquitto p50', \
  'latency-rate.dat' index 3 with linespoints lw 2 dt 2 title 'mosquitto p99', \
  'latency-rate.dat' index 4 with linespoints lw 2 dt 1 title 'tmqtt-wasm p50', \
  'latency-rate.dat' index 5 with linespoints lw 2 dt 2 title 'tmqtt-wasm p99'

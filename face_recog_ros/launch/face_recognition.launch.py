"""Start face_recognition_node on a camera topic.

    ros2 launch face_recog_ros face_recognition.launch.py image_topic:=/camera/image_raw
    ros2 launch face_recog_ros face_recognition.launch.py image_topic:=/camera/image_raw \
        use_compressed:=true namespace:=robot1 params_file:=/path/to/my_params.yaml

The node subscribes `image` (remapped to image_topic), or `<image_topic>/compressed` with
use_compressed:=true, and publishes ~/faces, ~/events, ~/detections, ~/image_annotated (on
demand) and /diagnostics. face_recognition.launch.xml is the same launch file in XML.

It is a lifecycle node. autostart:=true (default) has it configure and activate itself;
autostart:=false leaves it unconfigured and this file drives it with lifecycle events
(configure, then activate once it is inactive), so a lifecycle manager or another launch file
can do the same. The XML twin has no lifecycle event actions: with autostart:=false it leaves
the node to `ros2 lifecycle set` or a manager.

The Fast DDS profile (fastdds_profile, default config/fastdds_large_frames.xml) is applied to
every process this file starts: raw frames then cross between processes intact.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
import lifecycle_msgs.msg
from launch.actions import DeclareLaunchArgument, EmitEvent, RegisterEventHandler
from launch.actions import SetEnvironmentVariable
from launch.conditions import IfCondition, UnlessCondition
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from launch_ros.parameter_descriptions import ParameterValue

# Fast DDS 2.x (Humble, Iron, Jazzy) reads FASTRTPS_DEFAULT_PROFILES_FILE, 3.x the FASTDDS_ one.
FASTDDS_2_DISTROS = ('humble', 'iron', 'jazzy')


def generate_launch_description() -> LaunchDescription:
    default_params = os.path.join(get_package_share_directory('face_recog_ros'), 'config',
                                  'face_recognition.yaml')
    default_profile = os.path.join(get_package_share_directory('face_recog_ros'), 'config',
                                   'fastdds_large_frames.xml')
    fastdds_2 = IfCondition(str(os.environ.get('ROS_DISTRO') in FASTDDS_2_DISTROS).lower())
    node = LifecycleNode(
        package='face_recog_ros',
        executable='face_recognition_node',
        name='face_recognition_node',
        namespace=LaunchConfiguration('namespace'),
        output='screen',
        emulate_tty=True,
        parameters=[
            LaunchConfiguration('params_file'),
            {'use_compressed': ParameterValue(LaunchConfiguration('use_compressed'),
                                              value_type=bool),
             'autostart': ParameterValue(LaunchConfiguration('autostart'), value_type=bool)},
        ],
        remappings=[('image', LaunchConfiguration('image_topic'))],
        arguments=['--ros-args', '--log-level', LaunchConfiguration('log_level')],
    )
    manual = UnlessCondition(LaunchConfiguration('autostart'))

    def transition(transition_id: int, **kwargs) -> EmitEvent:
        return EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(node),
                                           transition_id=transition_id), **kwargs)

    return LaunchDescription([
        DeclareLaunchArgument('image_topic', default_value='/camera/image_raw',
                              description='sensor_msgs/Image topic to recognise faces in'),
        DeclareLaunchArgument('namespace', default_value='',
                              description='Namespace of the node (and of its ~/ topics and '
                                          'services)'),
        DeclareLaunchArgument('params_file', default_value=default_params,
                              description='ROS parameters YAML (detector, embedder, recognition, '
                                          'gallery, tracking settings)'),
        DeclareLaunchArgument('use_compressed', default_value='false', choices=['true', 'false'],
                              description='Subscribe <image_topic>/compressed (sensor_msgs/'
                                          'CompressedImage) instead of the raw image'),
        DeclareLaunchArgument('log_level', default_value='info',
                              description='debug, info, warn, error or fatal'),
        DeclareLaunchArgument('autostart', default_value='true', choices=['true', 'false'],
                              description='true: the node configures and activates itself; '
                                          'false: this launch file drives it with lifecycle '
                                          'events'),
        DeclareLaunchArgument('fastdds_profile', default_value=default_profile,
                              description='Fast DDS XML profile for the processes started here '
                                          '(large shared-memory segments and socket buffers '
                                          'for camera frames)'),
        SetEnvironmentVariable('FASTDDS_DEFAULT_PROFILES_FILE',
                               LaunchConfiguration('fastdds_profile')),
        SetEnvironmentVariable('FASTRTPS_DEFAULT_PROFILES_FILE',
                               LaunchConfiguration('fastdds_profile'), condition=fastdds_2),
        # numpy's BLAS threads would fight the TFLite threads for the same cores.
        SetEnvironmentVariable('OPENBLAS_NUM_THREADS', '1'),
        node,
        # autostart:=false: configure, then activate once configuring has ended in inactive.
        RegisterEventHandler(OnStateTransition(
            target_lifecycle_node=node, start_state='configuring', goal_state='inactive',
            entities=[transition(lifecycle_msgs.msg.Transition.TRANSITION_ACTIVATE)]),
            condition=manual),
        transition(lifecycle_msgs.msg.Transition.TRANSITION_CONFIGURE, condition=manual),
    ])
